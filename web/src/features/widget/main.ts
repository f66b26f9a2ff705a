import { createApp } from "vue";
import "../../shared/styles.css";
import ChatApp from "./ChatApp.vue";

createApp(ChatApp).mount("#app");
