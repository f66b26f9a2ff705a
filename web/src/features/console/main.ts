import { createApp } from "vue";
import "../../shared/styles.css";
import ConsoleApp from "./ConsoleApp.vue";

createApp(ConsoleApp).mount("#app");
